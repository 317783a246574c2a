"""Cuts document events into token-measured chunks."""
