"""The frame pipeline and the run loop around it (capture, heartbeat, systemd), the run summary and the benchmark."""
