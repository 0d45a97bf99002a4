//! Hosted-service suffixes under which a dangling alias can be claimed by someone else: a
//! CNAME to `myapp.herokuapp.com` whose app was deleted lets anyone who creates an app of
//! that name serve content on your domain. The table is small, dated and versioned; a
//! dangling target under one of these is a "likely takeover risk", not just a broken alias.
//!
//! Sources: the providers' own documentation of custom domains and the public "can I take
//! over" collections, as of [`TABLE_DATE`].

use super::name::Fqdn;

/// When the table was last checked against the providers.
pub const TABLE_DATE: &str = "2026-11-25";
/// Bumped whenever entries change, so reports can say which table judged them.
pub const TABLE_VERSION: u32 = 1;

/// One claimable suffix: a pattern of labels (`*` inside a label matches any characters
/// in that label, so `s3-website-*.amazonaws.com` covers every region) and the service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suffix {
    /// The pattern, without a trailing dot.
    pub pattern: &'static str,
    /// The service people know it as.
    pub service: &'static str,
}

/// The table. Only suffixes where a dangling name can be registered by another customer.
pub const TABLE: &[Suffix] = &[
    Suffix {
        pattern: "github.io",
        service: "GitHub Pages",
    },
    Suffix {
        pattern: "herokuapp.com",
        service: "Heroku",
    },
    Suffix {
        pattern: "herokudns.com",
        service: "Heroku",
    },
    Suffix {
        pattern: "azurewebsites.net",
        service: "Azure App Service",
    },
    Suffix {
        pattern: "cloudapp.net",
        service: "Azure Cloud Services",
    },
    Suffix {
        pattern: "cloudapp.azure.com",
        service: "Azure VM DNS",
    },
    Suffix {
        pattern: "trafficmanager.net",
        service: "Azure Traffic Manager",
    },
    Suffix {
        pattern: "blob.core.windows.net",
        service: "Azure Blob Storage",
    },
    Suffix {
        pattern: "azureedge.net",
        service: "Azure CDN",
    },
    Suffix {
        pattern: "azure-api.net",
        service: "Azure API Management",
    },
    Suffix {
        pattern: "azurefd.net",
        service: "Azure Front Door",
    },
    Suffix {
        pattern: "azurecontainer.io",
        service: "Azure Container Instances",
    },
    Suffix {
        pattern: "s3-website-*.amazonaws.com",
        service: "AWS S3 website",
    },
    Suffix {
        pattern: "s3-website.*.amazonaws.com",
        service: "AWS S3 website",
    },
    Suffix {
        pattern: "elasticbeanstalk.com",
        service: "AWS Elastic Beanstalk",
    },
    Suffix {
        pattern: "bitbucket.io",
        service: "Bitbucket Cloud",
    },
    Suffix {
        pattern: "ghost.io",
        service: "Ghost",
    },
    Suffix {
        pattern: "pantheonsite.io",
        service: "Pantheon",
    },
    Suffix {
        pattern: "surge.sh",
        service: "Surge",
    },
    Suffix {
        pattern: "readthedocs.io",
        service: "Read the Docs",
    },
    Suffix {
        pattern: "myshopify.com",
        service: "Shopify",
    },
    Suffix {
        pattern: "wordpress.com",
        service: "WordPress.com",
    },
];

/// The claimable suffix `name` lies under (strictly below it: the suffix itself is the
/// provider's own name), if any.
pub fn claimable(name: &Fqdn) -> Option<Suffix> {
    let labels: Vec<&str> = name.labels().collect();
    TABLE.iter().copied().find(|suffix| {
        let pattern: Vec<&str> = suffix.pattern.split('.').collect();
        labels.len() > pattern.len()
            && labels[labels.len() - pattern.len()..]
                .iter()
                .zip(&pattern)
                .all(|(label, pat)| label_matches(label, pat))
    })
}

/// Whether `label` matches `pattern`, where one `*` stands for any run of characters.
fn label_matches(label: &str, pattern: &str) -> bool {
    match pattern.split_once('*') {
        None => label == pattern,
        Some((head, tail)) => {
            label.len() >= head.len() + tail.len()
                && label.starts_with(head)
                && label.ends_with(tail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(name: &str) -> Option<&'static str> {
        claimable(&Fqdn::parse(name).unwrap()).map(|s| s.service)
    }

    #[test]
    fn matches_below_the_suffix_only() {
        assert_eq!(service("myapp.herokuapp.com"), Some("Heroku"));
        assert_eq!(service("user.GitHub.io."), Some("GitHub Pages"));
        assert_eq!(service("herokuapp.com"), None);
        assert_eq!(service("notgithub.io"), None);
        assert_eq!(service("example.test"), None);
    }

    #[test]
    fn wildcard_labels_cover_every_region() {
        assert_eq!(
            service("bucket.s3-website-us-east-1.amazonaws.com"),
            Some("AWS S3 website")
        );
        assert_eq!(
            service("bucket.s3-website.eu-west-1.amazonaws.com"),
            Some("AWS S3 website")
        );
        assert_eq!(service("bucket.s3.amazonaws.com"), None);
    }

    #[test]
    fn the_table_is_dated_and_well_formed() {
        assert_eq!(TABLE_DATE.len(), 10);
        for s in TABLE {
            assert!(
                Fqdn::parse(&s.pattern.replace('*', "x")).is_ok(),
                "{}",
                s.pattern
            );
        }
    }
}
