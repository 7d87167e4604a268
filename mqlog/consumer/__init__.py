"""Reading side: consumers, consumer groups and queue semantics (to come)."""
