"""The web shell: the clients' Support Tracking Report and the staff pages (`psp serve`)."""
