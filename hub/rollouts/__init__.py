"""Fleet rollouts in waves, one-call rollbacks and the model inventory."""
