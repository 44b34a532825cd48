"""The Flower ServerApp and ClientApp; imported only by Flower's entry points and tests."""
