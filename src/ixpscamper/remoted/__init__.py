"""ixpscamper.remoted"""
