"""Train an SB3 agent on VMIMO-v0 (filled in by the agents issue)."""
