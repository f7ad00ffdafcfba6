"""splitbrain store package."""
