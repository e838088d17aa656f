"""Email to the districts: rendering the messages and delivering them through the durable outbox."""
