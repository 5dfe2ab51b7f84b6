"""What tests share: one fake charger (`charger`) and one wait helper (`wait`)."""
