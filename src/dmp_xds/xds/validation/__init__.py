"""The XDS metadata rules (ITI TF-3), pure: what a message must hold, and the forms of its values."""
