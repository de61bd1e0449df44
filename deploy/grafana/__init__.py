"""The Grafana dashboard for rtrec, generated with grafana-foundation-sdk."""
