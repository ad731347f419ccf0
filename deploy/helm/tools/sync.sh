#!/usr/bin/env bash
# Refreshes the chart's copies of the Grafana dashboards (deploy/grafana/*.json into
# dashboards/) and of the Prometheus rule files (deploy/prometheus/*.yaml|yml with top-level
# `groups:`, into rules/; promtool test files and configs stay out): Helm reads only files
# inside the chart. The chart tests fail while the copies differ.
set -euo pipefail
cd "$(dirname "$0")/../../.."
chart=deploy/helm/fairlane

rm -f "$chart"/dashboards/*.json "$chart"/rules/*.yaml "$chart"/rules/*.yml
shopt -s nullglob
for file in deploy/grafana/*.json; do cp "$file" "$chart/dashboards/"; done
for file in deploy/prometheus/*.yaml deploy/prometheus/*.yml; do
  if grep -q '^groups:' "$file"; then cp "$file" "$chart/rules/"; fi
done
