// A disk that fills up on demand, for SQLite: an SQLite VFS that passes every call to the
// platform's own VFS, except that while the disk is "full" every write and every growth of a file
// fails with SQLITE_FULL, as a write to a full disk does. Installed as the default VFS, so the code
// under test opens its databases as usual.
#ifndef SQUEEZE_TESTS_TESTING_FULL_DISK_H_
#define SQUEEZE_TESTS_TESTING_FULL_DISK_H_

namespace squeeze::testing {

class FullDisk {
 public:
  // Makes the shim the default VFS for the rest of the process (idempotent).
  FullDisk();
  // Every database write from now on fails (true) or goes to the real disk again (false).
  void SetFull(bool full);
  ~FullDisk() { SetFull(false); }
};

}  // namespace squeeze::testing

#endif  // SQUEEZE_TESTS_TESTING_FULL_DISK_H_
