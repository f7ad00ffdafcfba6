"""A deliberately wrong store, as an example of a user's own system."""
