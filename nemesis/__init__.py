"""splitbrain nemesis package."""
