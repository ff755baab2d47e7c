# Galleries: every site viewer reads them; a member creates galleries and edits or
# deletes the ones it created; a site_admin edits any gallery of its site and restores
# deleted ones. Editing a gallery includes its items.

resource Gallery {
  permissions = ["read", "update", "delete", "restore"];
  relations = { site: Site };

  "read" if "viewer" on "site";
  "update" if "site_admin" on "site";
  "delete" if "site_admin" on "site";
  "restore" if "site_admin" on "site";
}

has_relation(site: Site, "site", gallery: Gallery) if
  gallery.site = site;

# The creator keeps these rights while it may still create galleries on the site.
has_permission(user: User, action: String, gallery: Gallery) if
  action in ["update", "delete"] and
  gallery.created_by = user.id and
  site matches Site and
  has_relation(site, "site", gallery) and
  has_permission(user, "create_gallery", site);


# Items are seen by whoever sees their gallery.

resource GalleryItem {
  permissions = ["read"];
  relations = { gallery: Gallery };

  "read" if "read" on "gallery";
}

has_relation(gallery: Gallery, "gallery", item: GalleryItem) if
  item.gallery = gallery;
