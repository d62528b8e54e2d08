"""The fast tier: pure logic in milliseconds, without moto, the gateway or a network (`make test-unit`)."""
