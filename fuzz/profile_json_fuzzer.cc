// libFuzzer target: device profile files. Any text goes through what `squeeze devices put` and
// PutDeviceProfile run (protobuf's JSON mapping, then the profile's validation) and must come back
// as a profile or a status; a profile that validates must survive its own round trip.
#include <cstddef>
#include <cstdint>

#include "device_profiles/profile_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  for (bool require_device : {true, false}) {
    absl::StatusOr<squeeze::device_profiles::Profile> profile =
        squeeze::device_profiles::ProfileFromJson(text, require_device);
    if (!profile.ok()) continue;
    // What validated once validates again after going through its proto.
    absl::StatusOr<squeeze::device_profiles::Profile> again =
        squeeze::device_profiles::FromProto(squeeze::device_profiles::ToProto(*profile), require_device);
    if (!again.ok()) __builtin_trap();
  }
  return 0;
}
