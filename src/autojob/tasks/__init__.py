"""Task classes shipped with autojob."""
