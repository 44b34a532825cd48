"""The node's on-site scheduler: APScheduler's persistent job store and a ledger of job runs."""
