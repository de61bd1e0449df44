"""Helpers the test modules share: free ports, fixture frames, SDK clients, fault scenarios."""
