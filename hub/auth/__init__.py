"""Auth domain: bearer tokens, principals and role permissions."""
