"""contrasent."""
