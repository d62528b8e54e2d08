"""The two public wire formats (Minerva, SheepCRM) over the same use cases."""
