"""What the user watches: the rich console, the OpenCV window or nothing (`display`).
UI code runs on the main thread only.
"""
