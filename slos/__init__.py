"""slos"""
