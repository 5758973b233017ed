"""Images: registry client, content store, layer unpacking (`sangja.image.unpack`)."""
