DROP TABLE graph_relations;
DROP TABLE graph_nodes;
DROP TABLE graphs;
