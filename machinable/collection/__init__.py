"""collection"""
