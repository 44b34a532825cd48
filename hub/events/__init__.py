"""Events domain: reports that plants deliver through their outbox."""
