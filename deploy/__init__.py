"""Deployment files: Grafana dashboard, Prometheus and Grafana provisioning for compose."""
