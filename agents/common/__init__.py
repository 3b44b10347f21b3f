"""Small helpers shared by the agents package and ``train_agent.py`` (env construction, YAML, statistics)."""
