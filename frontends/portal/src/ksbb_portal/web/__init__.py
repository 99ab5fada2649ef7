"""The portal's pages, one router per role (public, sign-in, donor, recipient unit, facilitator, admin)."""
