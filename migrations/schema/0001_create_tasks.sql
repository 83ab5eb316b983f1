-- models sha256:ef23820fc87f07e0ab39ebd27af724b8e67265c2718efffc0fbf5835d2782fa6

CREATE TABLE tasks (
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    owner TEXT,
    metadata JSONB,
    created_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    updated_at TIMESTAMP WITH TIME ZONE DEFAULT now() NOT NULL,
    PRIMARY KEY (id)
);

