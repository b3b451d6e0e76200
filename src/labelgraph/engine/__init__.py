"""Training: the task (the one LightningModule), recipes turned into losses and optimisers, schedules, callbacks, the
LightningCLI of ``labelgraph fit``, and checkpoint IO."""
