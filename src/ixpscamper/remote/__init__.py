"""ixpscamper.remote"""
