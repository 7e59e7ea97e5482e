#include "client/front_plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "client/fidelity_text.h"

namespace squeeze::client {
namespace {

constexpr double kPanelWidth = 560, kPanelHeight = 420;
constexpr double kLeft = 80, kRight = 30, kTop = 50, kBottom = 60;

std::string Escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A perceptually ordered ramp (dark blue → teal → yellow) for t in [0, 1].
std::string Colour(double t) {
  t = std::clamp(t, 0.0, 1.0);
  const double stops[][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
  const double x = t * 4;
  const int i = std::min(3, static_cast<int>(x));
  const double f = x - i;
  auto mix = [&](int c) { return static_cast<int>(stops[i][c] + f * (stops[i + 1][c] - stops[i][c])); };
  return fmt::format("rgb({},{},{})", mix(0), mix(1), mix(2));
}

// Round tick values covering [lo, hi].
std::vector<double> Ticks(double lo, double hi) {
  const double span = std::max(hi - lo, 1e-12);
  const double raw = span / 5;
  const double mag = std::pow(10, std::floor(std::log10(raw)));
  const double step = raw / mag < 2 ? 2 * mag : raw / mag < 5 ? 5 * mag : 10 * mag;
  std::vector<double> ticks;
  for (double v = std::ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push_back(v);
  return ticks;
}

std::string Number(double v) { return std::fabs(v) >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}", v); }

// "; measured 1.31 ms, 14.2 dB; 'scores' 1x4420x2 (...): ..." for an exported candidate, each
// output on its own where that says more; "" when nothing was measured.
std::string MeasuredText(const v1::Candidate& c) {
  if (!c.has_measured()) return "";
  const v1::MeasuredFigures& m = c.measured();
  std::string text = "; measured ";
  if (m.latency_measured()) text += fmt::format("{:.2f} ms, ", m.latency_ms());
  text += std::isinf(m.sqnr_db()) ? std::string("lossless") : fmt::format("{:.1f} dB", m.sqnr_db());
  if (WorthShowing(m.outputs())) {
    for (const v1::OutputFidelity& o : m.outputs()) text += "; " + OutputFigures(o);
  }
  return text;
}

}  // namespace

std::string FrontPlotSvg(const v1::SearchJob& job,
                         const std::map<std::string, std::vector<v1::Recommendation>>& picks) {
  const int panels = std::max(1, job.fronts_size());
  const double width = kPanelWidth * panels, height = kPanelHeight + 40;
  // One SQNR colour scale for every panel.
  double sqnr_lo = 1e9, sqnr_hi = -1e9;
  for (const v1::DeviceFront& f : job.fronts()) {
    for (const v1::Candidate& c : f.candidates()) {
      const double s = std::min(c.predicted_sqnr_db(), 60.0);
      sqnr_lo = std::min(sqnr_lo, s);
      sqnr_hi = std::max(sqnr_hi, s);
    }
  }
  if (sqnr_lo > sqnr_hi) sqnr_lo = 0, sqnr_hi = 1;
  if (sqnr_hi - sqnr_lo < 1) sqnr_hi = sqnr_lo + 1;

  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0f}\" height=\"{:.0f}\" viewBox=\"0 0 {:.0f} {:.0f}\" "
      "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{:.0f}\" y=\"22\" font-size=\"15\" font-weight=\"bold\">Pareto fronts of {} (search {}), "
      "predicted</text>\n",
      width, height, width, height, kLeft, Escape(job.spec().model_id()), Escape(job.id()));

  for (int p = 0; p < job.fronts_size(); ++p) {
    const v1::DeviceFront& f = job.fronts(p);
    const double x0 = p * kPanelWidth + kLeft, x1 = (p + 1) * kPanelWidth - kRight;
    const double y0 = kTop + 10, y1 = kPanelHeight - kBottom + 10;
    std::vector<const v1::Candidate*> points;
    for (const v1::Candidate& c : f.candidates()) points.push_back(&c);
    for (const v1::Candidate& c : f.baselines()) points.push_back(&c);
    double lat_lo = 1e300, lat_hi = -1e300, mb_lo = 1e300, mb_hi = -1e300;
    for (const auto* c : points) {
      lat_lo = std::min(lat_lo, c->predicted_latency_ms());
      lat_hi = std::max(lat_hi, c->predicted_latency_ms());
      mb_lo = std::min(mb_lo, c->predicted_size_bytes() / 1e6);
      mb_hi = std::max(mb_hi, c->predicted_size_bytes() / 1e6);
    }
    if (points.empty()) lat_lo = 0, lat_hi = 1, mb_lo = 0, mb_hi = 1;
    const double lat_pad = std::max((lat_hi - lat_lo) * 0.05, 1e-3), mb_pad = std::max((mb_hi - mb_lo) * 0.05, 1e-3);
    lat_lo -= lat_pad, lat_hi += lat_pad, mb_lo = std::max(0.0, mb_lo - mb_pad), mb_hi += mb_pad;
    auto X = [&](double ms) { return x0 + (ms - lat_lo) / (lat_hi - lat_lo) * (x1 - x0); };
    auto Y = [&](double mb) { return y1 - (mb - mb_lo) / (mb_hi - mb_lo) * (y1 - y0); };

    svg += fmt::format(
        "<text x=\"{:.0f}\" y=\"{:.0f}\" font-size=\"13\" font-weight=\"bold\">{} (profile v{}, {} "
        "candidates{})</text>\n",
        x0, y0 - 12, Escape(f.device_id()), f.device_version(), f.candidates_size(),
        f.constraints_met() ? "" : ", none within the limits");
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"none\" "
        "stroke=\"#444\"/>\n",
        x0, y0, x1 - x0, y1 - y0);
    for (double t : Ticks(lat_lo, lat_hi)) {
      svg += fmt::format(
          "<line x1=\"{0:.1f}\" x2=\"{0:.1f}\" y1=\"{1:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>"
          "<text x=\"{0:.1f}\" y=\"{3:.1f}\" text-anchor=\"middle\">{4}</text>\n",
          X(t), y0, y1, y1 + 16, Number(t));
    }
    for (double t : Ticks(mb_lo, mb_hi)) {
      svg += fmt::format(
          "<line x1=\"{0:.1f}\" x2=\"{1:.1f}\" y1=\"{2:.1f}\" y2=\"{2:.1f}\" stroke=\"#eee\"/>"
          "<text x=\"{3:.1f}\" y=\"{4:.1f}\" text-anchor=\"end\">{5}</text>\n",
          x0, x1, Y(t), x0 - 6, Y(t) + 4, Number(t));
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">latency, ms (predicted)</text>\n",
                       (x0 + x1) / 2, y1 + 36);
    svg += fmt::format(
        "<text transform=\"translate({:.1f},{:.1f}) rotate(-90)\" text-anchor=\"middle\">file size, "
        "MB (predicted)</text>\n",
        x0 - 55, (y0 + y1) / 2);
    for (const v1::Candidate& c : f.candidates()) {
      const double t = (std::min(c.predicted_sqnr_db(), 60.0) - sqnr_lo) / (sqnr_hi - sqnr_lo);
      // A candidate whose latency stands partly on spec figures is drawn hollow and says so.
      const bool spec = c.spec_layers() > 0;
      svg += fmt::format(
          "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3.5\" fill=\"{}\" stroke=\"{}\"><title>#{}: {:.2f} ms, "
          "{:.2f} MB, {:.1f} dB predicted{}; {}; latency from {}</title></circle>\n",
          X(c.predicted_latency_ms()), Y(c.predicted_size_bytes() / 1e6), spec ? "white" : Colour(t), Colour(t),
          c.index(), c.predicted_latency_ms(), c.predicted_size_bytes() / 1e6, c.predicted_sqnr_db(),
          Escape(MeasuredText(c)), Escape(c.plan_summary()), spec ? Escape(c.latency_basis()) : "measured samples");
    }
    for (const v1::Candidate& c : f.baselines()) {
      const double x = X(c.predicted_latency_ms()), y = Y(c.predicted_size_bytes() / 1e6);
      const bool left = x > x1 - 110;  // near the right edge the label goes on the left
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"9\" height=\"9\" fill=\"none\" stroke=\"#c0392b\" "
          "stroke-width=\"2\"/><text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#c0392b\" text-anchor=\"{}\">{}</text>\n",
          x - 4.5, y - 4.5, left ? x - 8 : x + 8, y - 6, left ? "end" : "start",
          Escape(c.tags().empty() ? "baseline" : c.tags(0)));
    }
    auto it = picks.find(f.device_id());
    if (it != picks.end()) {
      for (const v1::Recommendation& r : it->second) {
        const double x = X(r.candidate().predicted_latency_ms()), y = Y(r.candidate().predicted_size_bytes() / 1e6);
        const bool left = x > x1 - 120;
        svg += fmt::format(
            "<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"8\" fill=\"none\" stroke=\"black\" "
            "stroke-width=\"1.5\"/><text x=\"{:.1f}\" y=\"{:.1f}\" font-weight=\"bold\" "
            "text-anchor=\"{}\">{}</text>\n",
            x, y, left ? x - 10 : x + 10, y + 16, left ? "end" : "start", Escape(r.name()));
      }
    }
  }
  // The SQNR colour bar.
  const double bx = kLeft, by = height - 28, bw = 200;
  for (int i = 0; i < 50; ++i) {
    svg += fmt::format("<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"10\" fill=\"{}\"/>", bx + bw * i / 50,
                       by, bw / 50 + 0.5, Colour(i / 49.0));
  }
  svg += fmt::format(
      "\n<text x=\"{:.1f}\" y=\"{:.1f}\">{:.0f} dB</text><text x=\"{:.1f}\" y=\"{:.1f}\">{:.0f} dB "
      "output SQNR (predicted; colour)</text>\n",
      bx - 40, by + 9, sqnr_lo, bx + bw + 6, by + 9, sqnr_hi);
  svg += fmt::format(
      "<text x=\"{:.1f}\" y=\"{:.1f}\" fill=\"#c0392b\">squares: uniform baselines</text>"
      "<text x=\"{:.1f}\" y=\"{:.1f}\">rings: recommended picks</text>\n",
      bx + bw + 300, by + 9, bx + bw + 480, by + 9);
  svg += "</svg>\n";
  return svg;
}

}  // namespace squeeze::client
