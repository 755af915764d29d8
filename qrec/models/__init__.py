"""Rating and ranking models: one LightningModule family per file."""
