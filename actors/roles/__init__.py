"""The parties: model owner, data owner (its round drivers and actions, share deliveries),
the attacks, and the state store they resume from."""
