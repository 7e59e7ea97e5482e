// An SVG chart of a search's fronts: one panel per device, latency against size, colour for SQNR,
// the recommended picks ringed and named, the uniform baselines drawn for reference.
#ifndef SQUEEZE_CLIENT_FRONT_PLOT_H_
#define SQUEEZE_CLIENT_FRONT_PLOT_H_

#include <map>
#include <string>
#include <vector>

#include "squeeze/v1/search.pb.h"

namespace squeeze::client {

// `picks` maps a device id to its recommendations (may be empty).
std::string FrontPlotSvg(const v1::SearchJob& job, const std::map<std::string, std::vector<v1::Recommendation>>& picks);

}  // namespace squeeze::client

#endif  // SQUEEZE_CLIENT_FRONT_PLOT_H_
