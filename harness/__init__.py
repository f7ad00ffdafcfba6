"""splitbrain harness package."""
