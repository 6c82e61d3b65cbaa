"""Training: cross-device gathering and false-negative masks (the trainer lives here too)."""
