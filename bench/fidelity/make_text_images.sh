#!/usr/bin/env bash
# Renders the text images squeeze-bench-fidelity --image takes as realistic calibration inputs for
# the PP-OCR models (8-bit PPM at the models' input sizes): two 640x640 pages for det, eight 192x48
# lines for cls (three of them upside down: what the orientation classifier tells apart), two
# 320x48 lines for rec.
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
# cls's output is two logits per line: eight lines give its error 16 numbers to be measured on.
line() {  # OUT BACKGROUND FONT COLOUR SIZE TEXT [ROTATION]
  "$convert" -size 192x48 xc:"$2" -font "$3" -fill "$4" -pointsize "$5" -annotate +6+33 "$6" -rotate "${7:-0}" \
    -depth 8 "ppm:$out/$1.ppm"
}
line cls2 white DejaVu-Sans-Bold black 26 "OPEN DAILY"
line cls3 '#f4efe4' DejaVu-Sans '#302010' 22 "Coffee 2.50 EUR" 180
line cls4 white DejaVu-Serif '#203080' 24 "Pareto front"
line cls5 '#eeeeee' DejaVu-Sans-Mono black 20 "tel. 020 7946 0958" 180
line cls6 white DejaVu-Sans '#a02020' 30 "SALE -30%"
line cls7 '#fafafa' DejaVu-Serif black 22 "Thank you for visiting" 180
"$convert" -size 320x48 xc:white -font DejaVu-Sans -fill black -pointsize 26 -annotate +8+34 "Invoice 2026 total 41.50" \
  -depth 8 "ppm:$out/rec0.ppm"
"$convert" -size 320x48 xc:'#f4efe4' -font DejaVu-Serif -fill '#302010' -pointsize 28 -annotate +6+35 \
  "OPEN 24 HOURS daily" -depth 8 "ppm:$out/rec1.ppm"
