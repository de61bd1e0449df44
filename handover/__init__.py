"""What the relay and the recorder process share: the hand-over's wire format and their settings."""
