"""Cameras spread over a Ray cluster, moved when a machine dies (`python -m realtime.cluster`).

    head   (one, the machine that keeps the results)  Ray's head node; ships the model; writes
                                                      every camera's JSONL and events to --out
    worker (one per machine)                          joins with its capacity in frames per
                                                      second; runs one open-ended multi-camera
                                                      pipeline for the cameras placed on it
    up / status / down                                place cameras, show them, stop it all

Frames never leave the process that decoded them: a worker runs its cameras end to end, and
only placement, figures and predictions cross the network. A camera is a light Ray actor (no
backbone) reserving its sampling rate of the `camera_fps` resource that each worker advertises;
Ray's scheduler places it and restarts it on a machine with room when its machine dies; the
worker of the machine it lands on learns it from the head's controller and runs it
(`realtime.cluster.worker`). Layer: above the application (it assembles runs as `realtime.app`
does); Ray is imported only by `realtime.cluster.commands` and `realtime.cluster.slot`.
"""
