"""Plain torch building blocks (no Lightning)."""
