"""Static data shipped with the product: the Cog taxonomy and the demo sprite atlas."""
