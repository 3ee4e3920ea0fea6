// MetaNBD
