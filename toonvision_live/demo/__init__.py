"""The synthetic demo street: nametag drawing, sprites, the street scene, its window, a virtual X screen."""
