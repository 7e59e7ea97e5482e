#!/usr/bin/env bash
# Renders the text images squeeze-bench-fidelity --image takes as realistic calibration inputs for
# the PP-OCR models (8-bit PPM at the models' input sizes): two 640x640 pages for det, two 192x48
# lines for cls, two 320x48 lines for rec.
# Needs ImageMagick's convert and the DejaVu fonts (fonts-dejavu-core).
# Usage: bench/fidelity/make_text_images.sh OUT_DIR
set -euo pipefail
out=${1:?usage: $0 OUT_DIR}
mkdir -p "$out"
convert=/usr/bin/convert
[[ -x $convert ]] || convert=convert
"$convert" -size 640x640 xc:white -font DejaVu-Sans -fill black \
  -pointsize 34 -annotate +30+60 "Squeeze compresses models" \
  -pointsize 26 -annotate +40+140 "Invoice 2026-11-25  total 1,234.50 EUR" \
  -pointsize 44 -annotate +60+240 "OPEN 24 HOURS" \
  -pointsize 22 -annotate +30+320 "The quick brown fox jumps over the lazy dog" \
  -font DejaVu-Serif -pointsize 30 -annotate +80+420 "Hardware-aware search" \
  -pointsize 24 -annotate +20+520 "tel. +44 20 7946 0958   www.example.org" \
  -pointsize 36 -fill '#203080' -annotate +100+600 "Pareto front" \
  -depth 8 "ppm:$out/det0.ppm"
"$convert" -size 640x640 xc:'#f4efe4' -font DejaVu-Sans-Bold -fill '#302010' \
  -pointsize 40 -annotate +40+90 "MENU" \
  -font DejaVu-Sans -pointsize 28 -annotate +40+170 "Coffee ........ 2.50" \
  -annotate +40+230 "Tea ............ 2.00" -annotate +40+290 "Croissant ...... 1.80" \
  -pointsize 20 -annotate +300+400 "Thank you for visiting" \
  -pointsize 50 -fill '#a02020' -annotate +60+520 "SALE -30%" \
  -pointsize 18 -fill black -annotate +30+610 "Prices include VAT. Open Mon-Sat 7:00-19:00" \
  -depth 8 "ppm:$out/det1.ppm"
"$convert" -size 192x48 xc:white -font DejaVu-Sans -fill black -pointsize 28 -annotate +6+34 "Receipt" \
  -depth 8 "ppm:$out/cls0.ppm"
"$convert" -size 192x48 xc:'#eeeeee' -font DejaVu-Serif -fill '#102040' -pointsize 24 -annotate +4+32 "total 42.00" \
  -depth 8 "ppm:$out/cls1.ppm"
"$convert" -size 320x48 xc:white -font DejaVu-Sans -fill black -pointsize 26 -annotate +8+34 "Invoice 2026 total 41.50" \
  -depth 8 "ppm:$out/rec0.ppm"
"$convert" -size 320x48 xc:'#f4efe4' -font DejaVu-Serif -fill '#302010' -pointsize 28 -annotate +6+35 \
  "OPEN 24 HOURS daily" -depth 8 "ppm:$out/rec1.ppm"
