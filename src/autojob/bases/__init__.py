"""Base models shared by every task class."""
