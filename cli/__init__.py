"""The `stylegan-metrics` command line (installed as the package `stylegan_metrics_cli`)."""
