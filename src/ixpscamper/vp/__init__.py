"""ixpscamper.vp"""
