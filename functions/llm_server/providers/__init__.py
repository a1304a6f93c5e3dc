"""Model providers behind one interface (`base.ChatProvider`)."""
